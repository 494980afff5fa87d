"""What the CLIs do, as library calls: build -> calibrate -> convert -> write; evaluate.

Tools only parse flags and call one function here, so tests and scripts get the same behaviour.
Outputs are written atomically (temp file + rename): a failed run leaves nothing half-written.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
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
from deploy._files import atomic_write
from deploy.provenance import with_provenance
from deploy.convert.api import quantize, report_path
from deploy.convert.sources import ModelSource
from deploy.evaluation.api import (evaluate_source, evaluate_tflite, infer_scale, read_report,
                                   tile_overlap)
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
        raise UserInputError(f"--input_size '{text}' is not HxW (e.g. 64x64) or 'dynamic'") from None
    hw = hw * 2 if len(hw) == 1 else hw
    if len(hw) != 2 or min(hw) < 8:
        raise UserInputError(f"--input_size '{text}' must be HxW with sides >= 8")
    return hw


def list_models_table() -> str:
    shipped = set(models.available_weights())
    rows = [f"{'model':<15}{'params(x3)':>11}  {'scales':<8}{'shipped weights':<17}paper"]
    for name, spec in models.MODELS.items():
        params = models.build(name, 3).count_params()
        have = ",".join(f"x{s}" for s in spec.scales if (name, s) in shipped) or "-"
        rows.append(f"{name:<15}{params:>11,}  {','.join(map(str, spec.scales)):<8}{have:<17}{spec.paper}")
    return "\n".join(rows)


def convert_model(src: ModelSource, precision: str, out: str | Path, *,
                  input_hw: Optional[tuple[int, int]] = convert.DEFAULT_INPUT_HW,
                  calib_dir: Optional[str] = None, calib_images: int = 8,
                  io_type: str = "float32", overwrite: bool = False) -> dict:
    """Convert at one precision; writes `out` and `out.json`, returns the report."""
    out = Path(out)
    for p in (out, report_path(out)):  # fail before minutes of calibration, not after
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists; pass --overwrite to replace it")
    q = quantize(src, precision, input_size=input_hw, calib_dir=calib_dir, calib_images=calib_images,
                 io_type=io_type)
    q = dataclasses.replace(q, report=with_provenance(q.report))
    q.save(out, overwrite=True)
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


def save_result(result: EvalResult, json_path: Optional[str]) -> None:
    if json_path:
        write_json(result, json_path)


__all__: Sequence[str] = ["convert_model", "convert_zoo_model", "evaluate_source", "evaluate_tflite",
                          "list_models_table", "parse_hw", "save_result"]
