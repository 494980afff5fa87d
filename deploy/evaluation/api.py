"""`deploy.evaluate`: PSNR_Y/SSIM_Y of a model on real photos, whatever form the model is in.

A `.tflite` path, a `QuantizedModel` from `deploy.quantize`, or a `ModelSource` at a precision
(converted in memory; `float` runs the Keras model on whole images). The model's I/O
convention and tiling overlap come from its conversion report, else from the srdeploy metadata
embedded in the flatbuffer; a model with neither must be told its convention.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from deploy.convert.api import QuantizedModel, find_report
from deploy.convert.sources import ModelSource
from deploy.data import images
from deploy.data.io_convention import IOConvention
from deploy.errors import UserInputError
from deploy.evaluation.config import EvalConfig, QuantizeConfig
from deploy.evaluation.evaluator import EvalResult, evaluate as _score

from deploy.data.io_convention import DEFAULT_INPUT_HW  # noqa: E402 - the default LR input size


def evaluate(model: str | Path | QuantizedModel | ModelSource, data: Optional[str | Path] = None,
             config: Optional[EvalConfig] = None, *, precision: str = "float",
             npu_emulate: Optional[str] = None) -> EvalResult:
    """PSNR_Y / SSIM_Y (and bicubic's) on whole images, tiled with overlap for fixed-shape models.

    Args:
        model: a .tflite path, a `QuantizedModel`, or a `ModelSource` (then `precision` applies).
        data: a folder of HR images (default: the bundled evaluation photos).
        config: a `deploy.EvalConfig` (default: all defaults): the scale and I/O convention when
            the model does not record them, interpreter threads, and for a `ModelSource` the fixed
            LR size it is converted at (deploy/evaluation/config.py).
        precision: for a `ModelSource` only: `float`, `fp16`, `int8` (= `a8w8`) or `a16w8` (= `int16x8`);
            the model `deploy.quantize` and `convert.py` make (deploy/evaluation/int8_route.py).
        npu_emulate: an NPU target (`qualcomm:SM8650`): the model is compiled for it and run as
            the phone would (NPU partitions in QNN HTP emulation, CPU ops on LiteRT); the result
            is the NPU's quality, not the CPU interpreter's (see `compare_npu` for both).
    Returns:
        A frozen `EvalResult`; `.to_json()` is the CLI's public JSON contract.
    Raises:
        deploy.errors.SrdeployError: an unreadable model or folder, a scale that contradicts the
            model, a model without a recorded I/O convention when none is given, an unknown NPU
            target, the NPU extra not installed, or a model the NPU compiler rejects.
    """
    if not isinstance(model, (str, Path, QuantizedModel, ModelSource)):
        raise UserInputError(f"model must be a .tflite path, a QuantizedModel or a deploy.load_model(...) result, "
                             f"not {type(model).__name__}")
    if config is None:
        config = EvalConfig()
    elif not isinstance(config, EvalConfig):
        raise UserInputError(f"config must be a deploy.EvalConfig, not {type(config).__name__}", option="config")
    result = _evaluate(model, data, config, precision, npu_emulate)
    return dataclasses.replace(result, config=types.MappingProxyType(config.to_json()))  # in its JSON


def _evaluate(model, data, config: EvalConfig, precision: str, npu_emulate: Optional[str]) -> EvalResult:
    scale, convention, num_threads, input_size = config.scale, config.convention, config.num_threads, config.input_size
    interpreter = config.interpreter
    if npu_emulate is not None and interpreter != "litert":
        raise UserInputError("npu_emulate and interpreter='integer' both say what runs the model: pick one",
                             option="interpreter")
    if isinstance(model, ModelSource):
        if npu_emulate is None:
            return evaluate_source(model, precision, data_dir=data, input_hw=input_size, num_threads=num_threads,
                                   interpreter=interpreter)
        model = _quantize_for_npu(model, precision, input_size, npu_emulate)
    if isinstance(model, QuantizedModel):
        result = _evaluate_bytes(model.tflite_bytes, dict(model.report), label=str(model.report.get("model", "model")),
                                 data_dir=data, scale=scale, convention=convention, num_threads=num_threads,
                                 npu_emulate=npu_emulate, interpreter=interpreter)
        return dataclasses.replace(result, conversion=conversion_summary(model.tflite_bytes, model.report))
    return evaluate_tflite(model, data_dir=data, scale=scale, num_threads=num_threads, convention=convention,
                           npu_emulate=npu_emulate, interpreter=interpreter)


def _quantize_for_npu(src: ModelSource, precision: str, input_size, target: str) -> QuantizedModel:
    """The model every entry point makes at `precision` (deploy/evaluation/int8_route.py)."""
    from deploy.convert.precisions import uniform
    from deploy.evaluation.int8_route import quantize
    from deploy.npu import resolve_soc
    resolve_soc(target)  # an unknown target fails before the conversion
    if input_size is None:
        raise UserInputError("NPUs need a fixed input size; pass input_size (e.g. (64, 64))")
    if uniform(precision) == "float":
        raise UserInputError("npu_emulate runs a converted model: pick precision int8, a16w8 or fp16")
    return quantize(src, precision, input_size=input_size)


def read_report(path: str | Path) -> dict:
    """What the model says about itself: its conversion report beside it (only one whose sha256
    is this model's: a stale or foreign JSON is not trusted), else the srdeploy metadata embedded
    in the flatbuffer, else {}."""
    from deploy.convert import metadata
    found = find_report(path)
    if found is not None:
        return found[1]
    try:
        return report_from_metadata(metadata.read(path))
    except metadata.MetadataError:
        return {}


def report_from_metadata(meta: Mapping[str, Any]) -> dict:
    """The report fields evaluation needs, rebuilt from embedded metadata."""
    inp = meta.get("input", {})
    hi = (inp.get("value_range") or [0, 1])[1]
    shape = ((inp.get("tensors") or [{}])[0]).get("shape")
    out = {"model": meta.get("model"), "scale": meta.get("scale"),
           "io_convention": {"channels": inp.get("colour_space", "rgb"),
                             "value_range": "0-255" if hi and float(hi) > 1 else "0-1"}}
    if shape:
        out["input_shape"] = shape
    if meta.get("receptive_radius_lr") is not None:
        out["receptive_radius_lr"] = meta["receptive_radius_lr"]
    return out


def model_scale(interp) -> Optional[int]:
    """The scale the model's own shapes imply (fixed shapes only), or None."""
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    if len(i["shape"]) != 4 or len(o["shape"]) != 4:  # a classifier's (1, 1000) output, say
        raise UserInputError(f"not an SR image model: input shape {[int(v) for v in i['shape']]}, output shape "
                             f"{[int(v) for v in o['shape']]} (expected NHWC image in and out)")
    ih, oh = int(i["shape_signature"][1]), int(o["shape_signature"][1])
    iw, ow = int(i["shape_signature"][2]), int(o["shape_signature"][2])
    if ih <= 0 or oh <= 0:
        return None
    if oh % ih or ow % iw or oh // ih != ow // iw or oh // ih < 1:
        raise UserInputError(f"not an SR model: output {oh}x{ow} is not a whole multiple of input {ih}x{iw}")
    return oh // ih


def infer_scale(path: str | Path | bytes) -> int:
    """Scale of an SR .tflite from its own I/O shapes (trying a 16x16 input for dynamic ones)."""
    from deploy.convert.tflite_io import make_interpreter
    interp = make_interpreter(path)
    found = model_scale(interp)
    if found is not None:
        return found
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    shape = [1, 16, 16, int(i["shape"][3])]
    interp.resize_tensor_input(i["index"], shape)
    interp.allocate_tensors()
    interp.set_tensor(i["index"], np.zeros(shape, i["dtype"]))
    interp.invoke()
    out = interp.get_tensor(o["index"]).shape
    if len(out) != 4 or out[1] < 16 or out[1] % 16 or out[2] != out[1]:
        raise UserInputError(f"not an SR model: a 16x16 input gives output shape {list(out)} "
                             "(expected a whole multiple of the input, NHWC)")
    return int(out[1] // 16)


def tile_overlap(radius: Optional[float], input_hw: Optional[Sequence[int]]) -> int:
    """Overlap that makes tiling exact (the receptive radius), capped at a quarter tile so
    deep nets (EDSR: 35 px) still tile; without a known radius, 8 px."""
    if radius is None or not input_hw:
        return 8
    return max(1, min(math.ceil(radius), min(input_hw) // 4))


def _samples(scale: int, data_dir: Optional[str | Path]):
    return images.eval_samples(scale, data_dir), (str(data_dir) if data_dir else "default")


def _checked_scale(tflite: str | Path | bytes, given: Optional[int], recorded: Optional[int]) -> int:
    own = infer_scale(tflite)
    if given is not None and int(given) != own:
        raise UserInputError(f"scale {given} contradicts the model, which upscales x{own}; "
                             "drop the scale or pass the right one")
    if recorded is not None and int(recorded) != own:
        raise UserInputError(f"the model's record says x{recorded} but its shapes upscale x{own}; "
                             "reconvert it")
    return own


def evaluate_tflite(path: str | Path, *, data_dir: Optional[str | Path] = None, scale: Optional[int] = None,
                    num_threads: int = 2, overlap: Optional[int] = None,
                    convention: Optional[IOConvention] = None, npu_emulate: Optional[str] = None,
                    interpreter: str = "litert") -> EvalResult:
    """Evaluate a .tflite file: I/O convention given, else recorded (report or metadata);
    `npu_emulate="qualcomm:SM8650"`: as that NPU computes it (compiled, emulated);
    `interpreter="integer"`: an a16w8 model on the integer interpreter (EvalConfig.interpreter)."""
    path = _existing(path)
    return _evaluate_bytes(path, read_report(path), label=path.name, data_dir=data_dir, scale=scale,
                           convention=convention, num_threads=num_threads, overlap=overlap,
                           npu_emulate=npu_emulate, interpreter=interpreter)


def _existing(path: str | Path) -> Path:
    from deploy.convert.tflite_io import TFLiteError
    path = Path(path)
    if not path.is_file():
        raise TFLiteError(f"{path} does not exist")
    return path


@dataclass(frozen=True)
class _Setup:
    scale: int
    convention: IOConvention
    overlap: int
    samples: Sequence[Any]
    dataset: str


def _setup(tflite: str | Path | bytes, report: Mapping[str, Any], *, label: str, data_dir, scale, convention,
           overlap: Optional[int]) -> _Setup:
    scale = _checked_scale(tflite, scale, report.get("scale"))
    if convention is None:
        if "io_convention" not in report:
            raise UserInputError(f"{label} has no srdeploy report or embedded metadata saying its I/O "
                                 "convention; pass it (--channels and --value_range)")
        convention = IOConvention(**report["io_convention"])
    if overlap is None:
        overlap = tile_overlap(report.get("receptive_radius_lr"), (report.get("input_shape") or [0, 0, 0])[1:3])
    samples, dataset = _samples(scale, data_dir)
    return _Setup(scale, convention, overlap, samples, dataset)


def npu_interpreter_factory(tflite: str | Path | bytes, target: str) -> tuple[Callable[[Any, int], Any], str, Any]:
    """(interpreter factory for `TFLiteRunner`, the SoC's name, the compile report or None): the
    model is compiled for `target` once; each worker gets its own emulator of the compiled bytes."""
    from deploy import npu
    soc = npu.resolve_soc(target)
    blob, compiled = npu.compiled_for(tflite, soc)
    return (lambda _model, _threads: npu.NpuEmulator(blob, soc)), soc.name, (compiled.report if compiled else None)


def _evaluate_bytes(tflite: str | Path | bytes, report: Mapping[str, Any], *, label: str,
                    data_dir, scale, convention, num_threads: int, overlap: Optional[int] = None,
                    npu_emulate: Optional[str] = None, interpreter: str = "litert") -> EvalResult:
    from deploy.evaluation.runners import TFLiteRunner
    run_on = interpreter_options(interpreter)
    if npu_emulate is not None:
        factory, soc, _ = npu_interpreter_factory(tflite, npu_emulate)
        run_on, label = {"interpreter_factory": factory}, npu_label(label, soc)
    st = _setup(tflite, report, label=label, data_dir=data_dir, scale=scale, convention=convention, overlap=overlap)
    runner = TFLiteRunner(tflite, st.scale, num_threads=num_threads, overlap=st.overlap, convention=st.convention,
                          **run_on)
    return _score(runner, st.samples, model=label, dataset=st.dataset)


def interpreter_options(interpreter: str) -> dict[str, Any]:
    """TFLiteRunner's options for EvalConfig.interpreter: LiteRT's defaults, or the integer
    interpreter (one worker: TensorFlow already uses every core; an image's tiles per call)."""
    if interpreter == "litert":
        return {}
    from deploy.evaluation.integer_interpreter import IntegerInterpreter
    return {"workers": 1, "interpreter_factory": lambda model, _threads: IntegerInterpreter(model)}


def npu_label(label: str, soc: str) -> str:
    return f"{label} [{soc} NPU, emulated]"


def conversion_summary(tflite: bytes, report: Mapping[str, Any]) -> dict[str, Any]:
    """What an evaluated in-memory model was (EvalResult.conversion): its sha256, precision and,
    for int8, which route made it and both routes' validation PSNR_Y."""
    return {"sha256": hashlib.sha256(tflite).hexdigest(), "precision": report.get("precision"),
            **({"int8_route": report["int8_route"]} if "int8_route" in report else {})}


def evaluate_source(src: ModelSource, precision: str, *, data_dir: Optional[str | Path] = None,
                    input_hw: Optional[tuple[int, int]] = DEFAULT_INPUT_HW,
                    calib_dir: Optional[str] = None, calib_images: int = 8,
                    num_threads: int = 2, interpreter: str = "litert") -> EvalResult:
    """Evaluate at a precision the model every entry point makes (deploy/evaluation/int8_route.py:
    `convert.py`'s and `deploy.quantize`'s very bytes, in memory); float runs the Keras model on
    whole images; `interpreter="integer"`: a16w8 on the integer interpreter (EvalConfig.interpreter)."""
    from deploy.convert.api import check_scale
    from deploy.convert.precisions import uniform
    from deploy.evaluation.int8_route import quantize
    from deploy.evaluation.runners import KerasRunner, TFLiteRunner
    from models.complexity import receptive_radius
    precision = uniform(precision)  # a8w8 = int8, int16x8 = a16w8
    if interpreter != "litert" and precision != "a16w8":
        raise UserInputError(f"the integer interpreter runs a16w8 models, not {precision}: drop the interpreter "
                             "option or pick precision a16w8", option="interpreter")
    check_scale(src)  # --scale vs the model's own shapes
    samples, dataset = _samples(src.scale, data_dir)
    label = f"{src.name}_x{src.scale}_{precision}"
    if precision == "float" and not src.graph_route:  # big images in tiles with exact context: bounded memory
        runner = KerasRunner(src.model, src.scale, src.convention,
                             radius=receptive_radius(src.model) if src.zoo else None)
        return _score(runner, samples, model=label, dataset=dataset)
    if precision == "float" and src.framework == "keras3":  # a Keras 3 model runs whole images at float
        return _score(KerasRunner(src.model, src.scale, src.convention), samples, model=label, dataset=dataset)
    q = quantize(src, precision, QuantizeConfig(calib_images=calib_images), input_size=input_hw, calib_dir=calib_dir)
    hw = tuple(q.report["input_shape"][1:3]) if src.graph_route else input_hw  # a float TFLite keeps its size
    runner = TFLiteRunner(q.tflite_bytes, src.scale, num_threads=num_threads, convention=src.convention,
                          overlap=tile_overlap(q.report.get("receptive_radius_lr"), hw), **interpreter_options(interpreter))
    result = _score(runner, samples, model=label, dataset=dataset)
    return dataclasses.replace(result, conversion=conversion_summary(q.tflite_bytes, q.report))
