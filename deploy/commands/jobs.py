"""What the CLIs do, as library calls: build -> calibrate -> convert -> write; evaluate.

Tools only parse flags and call one function here, so tests and scripts get the same behaviour.
Outputs are written atomically (temp file + rename): a failed run leaves nothing half-written.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

import math

import models
from deploy.data import calibration
from deploy.convert import uniform
from deploy.data import images
from deploy.convert import metadata
from deploy.convert import sources
from deploy.evaluation.evaluator import EvalResult, evaluate, write_json
from deploy.data.io_convention import IOConvention
from deploy._files import atomic_write, check_outputs
from deploy.convert.api import find_report, quantize, report_path
from deploy.convert.sources import ModelSource
from deploy.evaluation.api import (evaluate_source, evaluate_tflite, infer_scale, read_report,
                                   tile_overlap)
from deploy.evaluation.runners import KerasRunner, TFLiteRunner
from deploy.evaluation.emulated import NpuComparison, compare_npu, write_comparison_json
from deploy.evaluation.config import QuantizeConfig
from deploy.evaluation.workflows import convert_file, source_files  # noqa: F401 - policy_jobs, tests
from deploy.convert.tflite_io import TFLiteError, make_interpreter
from models.complexity import receptive_radius


#: Largest fixed LR input side. Images of any size are run in tiles of this input; a larger fixed
#: input only costs memory (converting XLSR at 4096x4096 took 16.5 GB) and is never faster.
MAX_INPUT_SIDE = 1024


def parse_hw(text: str) -> Optional[tuple[int, int]]:
    """'64x64' or '64' -> (64, 64); 'dynamic' -> None (any size; float/fp16 only)."""
    if text.lower() in ("dynamic", "none", "any"):
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        hw = tuple(int(p) for p in parts)
    except ValueError:
        raise UserInputError(f"--input_size '{text}' is not HxW (e.g. 64x64) or 'dynamic'") from None
    hw = hw * 2 if len(hw) == 1 else hw
    if len(hw) != 2 or min(hw) < 8:
        raise UserInputError(f"--input_size '{text}' must be HxW with sides >= 8")
    if max(hw) > MAX_INPUT_SIDE:
        raise UserInputError(f"--input_size '{text}': sides above {MAX_INPUT_SIDE} only cost memory (images of "
                             "any size run in tiles of this input); use e.g. 64x64, or 'dynamic' for float")
    return hw


def list_models_table() -> str:
    shipped = set(models.available_weights())
    rows = [f"{'model':<15}{'params(x3)':>11}  {'scales':<8}{'shipped weights':<17}paper"]
    for name, spec in models.MODELS.items():
        params = models.build(name, 3).count_params()
        have = ",".join(f"x{s}" for s in spec.scales if (name, s) in shipped) or "-"
        rows.append(f"{name:<15}{params:>11,}  {','.join(map(str, spec.scales)):<8}{have:<17}{spec.paper}")
    rows += ["", "latency- and compile-only graphs (no weights; tools/predict_latency.py, NPU compile):",
             f"{'model':<15}{'params(x4)':>11}  {'scales':<8}{'':<17}paper"]
    for name, spec in models.GRAPH_ONLY.items():
        params = models.build(name, 4).count_params()
        rows.append(f"{name:<15}{params:>11,}  {','.join(map(str, spec.scales)):<8}{'-':<17}{spec.paper}")
    return "\n".join(rows)


def convert_model(src: ModelSource, precision: str, out: str | Path, *,
                  input_hw: Optional[tuple[int, int]] = uniform.DEFAULT_INPUT_HW,
                  calib_dir: Optional[str] = None, calib_images: int = 8,
                  io_type: str = "float32", overwrite: bool = False, ptq=None) -> dict:
    """`convert.py --precision`: flags -> QuantizeConfig -> `convert_file` (deploy/evaluation/
    workflows.py); writes `out` and `out.json`, returns the report."""
    config = QuantizeConfig(calib_images=calib_images, io_type=io_type, ptq=ptq)
    q = convert_file(src, precision, out, config, input_size=input_hw, calib_dir=calib_dir, overwrite=overwrite)
    return dict(q.report)


def convert_zoo_model(name: str, scale: int, precision: str, out: str | Path, *,
                      weights: bool | str = True, **kwargs) -> dict:
    return convert_model(sources.resolve(name, scale, weights=weights), precision, out, **kwargs)


DEFAULT_BENCH_MODEL = Path("adb_bench") / "xlsr_x3_int8.tflite"


def default_benchmark_model() -> str:
    """The model `tools/adb_bench.py` measures when given none: shipped XLSR x3, int8, 64x64."""
    if not DEFAULT_BENCH_MODEL.is_file():
        print(f"no --model given: converting the shipped XLSR x3 to int8 as {DEFAULT_BENCH_MODEL}")
        convert_zoo_model("xlsr", 3, "int8", DEFAULT_BENCH_MODEL)
    return str(DEFAULT_BENCH_MODEL)


def check_image_count(flag: str, folder: Optional[str], n: int, given: bool) -> None:
    """--calib_images / --val_images set by the user above what the photos hold: refused (the
    default simply uses every photo there is, and the report lists them)."""
    if given:
        calibration.check_count(folder, n, f"--{flag}", "validation" if flag == "val_images" else "calibration")


def check_result_path(json_path: Optional[str], inputs: Sequence[Optional[str]] = (), *,
                      overwrite: bool = False) -> None:
    """evaluate.py --json: never over the model evaluated (or another input), never over an
    existing file without --overwrite; checked before the evaluation runs."""
    check_outputs((json_path,), inputs, overwrite=overwrite)


def save_result(result: EvalResult | NpuComparison, json_path: Optional[str], *, overwrite: bool = True) -> None:
    """Write the result JSON; without `overwrite`, a file that appeared meanwhile is not replaced."""
    if json_path:
        write = write_comparison_json if isinstance(result, NpuComparison) else write_json
        write(result, json_path, overwrite=overwrite)


def check_npu_targets(targets: Sequence[str]) -> list:
    """Resolve every --npu target and find the NPU compiler before minutes of conversion."""
    from deploy import npu
    from deploy.npu.qairt import toolchain
    socs = [npu.resolve_soc(t) for t in targets]
    if socs:
        toolchain()
    return socs


def npu_placement(model: str | Path, targets: Sequence[str]) -> list[str]:
    """Compile the written model in memory for every target, record the placement in its report
    JSON (`npu` key) and return the lines to print: one warning per op left on the CPU (the
    compiler's reason and the fix), or "compiles whole"."""
    from deploy import npu
    summary = npu.check_placement(model, check_npu_targets(targets))
    found = find_report(model)  # this model's own report (never a policy file beside it)
    if found is not None:
        rep, doc = found
        doc["npu"] = summary
        atomic_write(rep, json.dumps(doc, indent=2) + "\n")
    return npu.placement_lines(summary)


__all__: Sequence[str] = ["check_npu_targets", "compare_npu", "convert_model", "convert_zoo_model",
                          "evaluate_source", "evaluate_tflite", "list_models_table", "npu_placement", "parse_hw",
                          "save_result"]
