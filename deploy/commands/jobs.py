"""What the CLIs do, as library calls: build -> calibrate -> convert -> write; evaluate.

Tools only parse flags and call one function here, so tests and scripts get the same behaviour.
Outputs are written atomically (temp file + rename): a failed run leaves nothing half-written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

import math

import models
from deploy.data import calibration
from deploy.convert import uniform as convert
from deploy.data import images as data
from deploy.convert import metadata
from deploy.convert import sources
from deploy.evaluation.evaluator import EvalResult, evaluate, write_json
from deploy.data.io_convention import IOConvention
from deploy.convert.sources import ModelSource
from deploy.evaluation.runners import KerasRunner, TFLiteRunner
from deploy.convert.tflite_io import TFLiteError, make_interpreter
from models.complexity import receptive_radius


def parse_hw(text: str) -> Optional[tuple[int, int]]:
    """'64x64' or '64' -> (64, 64); 'dynamic' -> None (any size; float/fp16 only)."""
    if text.lower() in ("dynamic", "none", "any"):
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        hw = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--input_size '{text}' is not HxW (e.g. 64x64) or 'dynamic'") from None
    hw = hw * 2 if len(hw) == 1 else hw
    if len(hw) != 2 or min(hw) < 8:
        raise ValueError(f"--input_size '{text}' must be HxW with sides >= 8")
    return hw


def list_models_table() -> str:
    shipped = set(models.available_weights())
    rows = [f"{'model':<15}{'params(x3)':>11}  {'scales':<8}{'shipped weights':<17}paper"]
    for name, spec in models.MODELS.items():
        params = models.build(name, 3).count_params()
        have = ",".join(f"x{s}" for s in spec.scales if (name, s) in shipped) or "-"
        rows.append(f"{name:<15}{params:>11,}  {','.join(map(str, spec.scales)):<8}{have:<17}{spec.paper}")
    return "\n".join(rows)


def atomic_write(path: Path, payload: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload) if isinstance(payload, bytes) else tmp.write_text(payload)
    os.replace(tmp, path)


def report_path(tflite_path: str | Path) -> Path:
    return Path(tflite_path).with_suffix(".json")


def convert_model(src: ModelSource, precision: str, out: str | Path, *,
                  input_hw: Optional[tuple[int, int]] = convert.DEFAULT_INPUT_HW,
                  calib_dir: Optional[str] = None, calib_images: int = 8,
                  io_type: str = "float32", overwrite: bool = False) -> dict:
    """Convert at one precision; writes `out` and `out.json`, returns the report."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if precision not in convert.PRECISIONS:
        raise convert.ConversionError(f"unknown precision '{precision}'; choose one of "
                                      f"{', '.join(convert.PRECISIONS)}")
    convert.check_io_type(precision, io_type)
    if input_hw is None and precision in ("int8", "a16w8"):
        raise convert.ConversionError("integer models need a fixed --input_size (e.g. 64x64): "
                                      "dynamic shapes add SHAPE ops that keep feature maps in float")
    model = src.fixed(input_hw) if input_hw is not None else src.model
    calib = None
    if precision in ("int8", "a16w8"):
        calib = calibration.calibration_set(src.scale, input_hw, calib_dir=calib_dir, n_images=calib_images,
                                            convention=src.convention)
    converted = convert.convert_uniform(model, precision, calib=calib, io_type=io_type)
    report = {**src.to_json(), **converted.report, "receptive_radius_lr": round(receptive_radius(model), 2)}
    tflite, report = metadata.stamp(converted.tflite, report)  # scale, I/O convention, quantization
    atomic_write(out, tflite)
    atomic_write(report_path(out), json.dumps(report, indent=2) + "\n")
    return report


def convert_zoo_model(name: str, scale: int, precision: str, out: str | Path, *,
                      weights: bool | str = True, **kwargs) -> dict:
    return convert_model(sources.resolve(name, scale, weights=weights), precision, out, **kwargs)


def read_report(path: str | Path) -> dict:
    rep = report_path(path)
    if rep.is_file():
        try:
            return json.loads(rep.read_text())
        except ValueError:
            return {}
    return {}


DEFAULT_BENCH_MODEL = Path("adb_bench") / "xlsr_x3_int8.tflite"


def default_benchmark_model() -> str:
    """The model `tools/adb_bench.py` measures when given none: shipped XLSR x3, int8, 64x64."""
    if not DEFAULT_BENCH_MODEL.is_file():
        print(f"no --model given: converting the shipped XLSR x3 to int8 as {DEFAULT_BENCH_MODEL}")
        convert_zoo_model("xlsr", 3, "int8", DEFAULT_BENCH_MODEL)
    return str(DEFAULT_BENCH_MODEL)


def infer_scale(path: str | Path) -> int:
    """Scale of an SR .tflite: from its report beside it, else from its I/O shapes."""
    try:
        return int(read_report(path)["scale"])
    except (KeyError, TypeError, ValueError):
        pass
    interp = make_interpreter(path)
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    if i["shape_signature"][1] > 0 and o["shape_signature"][1] > 0:
        return int(o["shape"][1] // i["shape"][1])
    interp.resize_tensor_input(i["index"], [1, 16, 16, 3])
    interp.allocate_tensors()
    interp.set_tensor(i["index"], np.zeros([1, 16, 16, 3], i["dtype"]))
    interp.invoke()
    return int(interp.get_tensor(o["index"]).shape[1] // 16)


def tile_overlap(radius: Optional[float], input_hw: Optional[Sequence[int]]) -> int:
    """Overlap that makes tiling exact (the receptive radius), capped at a quarter tile so
    deep nets (EDSR: 35 px) still tile; without a known radius, 8 px."""
    if radius is None or not input_hw:
        return 8
    return max(1, min(math.ceil(radius), min(input_hw) // 4))


def _samples(scale: int, data_dir: Optional[str]):
    return data.eval_samples(scale, data_dir), (str(data_dir) if data_dir else "default")


def evaluate_tflite(path: str | Path, *, data_dir: Optional[str] = None, scale: Optional[int] = None,
                    num_threads: int = 2, overlap: Optional[int] = None,
                    convention: Optional[IOConvention] = None) -> EvalResult:
    """I/O convention: given, else the one recorded in the model's report, else the zoo's."""
    path = Path(path)
    if not path.is_file():
        raise TFLiteError(f"{path} does not exist")
    scale = scale or infer_scale(path)
    report = read_report(path)
    if convention is None:
        convention = IOConvention(**report.get("io_convention", {}))
    if overlap is None:
        overlap = tile_overlap(report.get("receptive_radius_lr"), report.get("input_shape", [0, 0, 0])[1:3])
    samples, dataset = _samples(scale, data_dir)
    runner = TFLiteRunner(path, scale, num_threads=num_threads, overlap=overlap, convention=convention)
    return evaluate(runner, samples, model=path.name, dataset=dataset)


def evaluate_source(src: ModelSource, precision: str, *, data_dir: Optional[str] = None,
                    input_hw: Optional[tuple[int, int]] = convert.DEFAULT_INPUT_HW,
                    calib_dir: Optional[str] = None, calib_images: int = 8,
                    num_threads: int = 2) -> EvalResult:
    """Evaluate at a precision, converted in memory; float runs the Keras model on whole images."""
    samples, dataset = _samples(src.scale, data_dir)
    label = f"{src.name}_x{src.scale}_{precision}"
    if precision == "float":
        return evaluate(KerasRunner(src.model, src.scale, src.convention), samples, model=label, dataset=dataset)
    model = src.fixed(input_hw) if input_hw is not None else src.model
    calib = (calibration.calibration_set(src.scale, input_hw, calib_dir=calib_dir, n_images=calib_images,
                                         convention=src.convention)
             if precision in ("int8", "a16w8") else None)
    converted = convert.convert_uniform(model, precision, calib=calib)
    runner = TFLiteRunner(converted.tflite, src.scale, num_threads=num_threads, convention=src.convention,
                          overlap=tile_overlap(receptive_radius(model), input_hw))
    return evaluate(runner, samples, model=label, dataset=dataset)


def save_result(result: EvalResult, json_path: Optional[str]) -> None:
    if json_path:
        write_json(result, json_path)


__all__: Sequence[str] = ["convert_model", "convert_zoo_model", "evaluate_source", "evaluate_tflite",
                          "list_models_table", "parse_hw", "save_result"]
