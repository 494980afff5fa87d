"""`deploy.convert_file`: a source quantized and written as `.tflite` + report, the workflow behind
`tools/convert.py` (a uniform precision or a per-layer policy).

Why in the library: a script gets exactly what the CLI does: the outputs checked before the
minutes of calibration (never over an input, never over an existing file without
`overwrite`), the model every entry point makes (`deploy.quantize`, deploy/evaluation/
int8_route.py), provenance in its report, both files written atomically. It lives in
evaluation/ because `deploy.quantize`'s int8 choice measures on validation patches here.
"""
from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from deploy._files import check_outputs
from deploy.convert.api import QuantizedModel, report_path
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource
from deploy.data.io_convention import DEFAULT_INPUT_HW
from deploy.evaluation.config import QuantizeConfig


def source_files(src: ModelSource) -> list[Path]:
    """The files a model source was read from (a user's model, a weight file): never outputs."""
    return [Path(src.weights)] if src.weights and Path(src.weights).exists() else []  # a SavedModel is a folder


def check_outputs_of(source: ModelSource, out: str | Path, *, calib_dir: Optional[str | Path] = None,
                     inputs: Sequence[Any] = (), overwrite: bool = False) -> Path:
    """The output rule for `out` and its report, before any work; returns the report's path
    (`out` with .json, or `out`.json where that is one of `inputs`, e.g. the policy file)."""
    out = Path(out)
    side = report_path(out, avoid=tuple(i for i in inputs if i is not None))
    check_outputs((out, side), (*inputs, *source_files(source), calib_dir), overwrite=overwrite)
    return side


def convert_file(source: ModelSource, policy: Policy | str, out: str | Path, config: Optional[QuantizeConfig] = None,
                 *, input_size: Optional[tuple[int, int]] = DEFAULT_INPUT_HW, calib_dir: Optional[str | Path] = None,
                 overwrite: bool = False, inputs: Sequence[Any] = (),
                 qat: Optional[Mapping[str, Any]] = None) -> QuantizedModel:
    """`deploy.quantize(source, policy, config, ...)`, written at `out` and its report.

    Args:
        source, policy, config, input_size, calib_dir: as `deploy.quantize`.
        out: the .tflite to write; the report goes beside it (see `check_outputs_of`).
        overwrite: replace existing outputs (without it, a file that appears meanwhile is
            never replaced either: the write is atomic).
        inputs: further files the outputs must never replace (the policy file the policy was
            read from, a QAT training folder).
        qat: the report of the fine-tune that made `config.ptq`
            (`deploy.experimental.qat.finetune_source`), recorded as the report's `qat`.
    Returns:
        The saved `QuantizedModel`; its report (provenance included) is what was written.
    Raises:
        deploy.errors.OutputExistsError / UserInputError: an output exists or is an input.
        deploy.errors.SrdeployError: as `deploy.quantize`.
    """
    from deploy.evaluation.int8_route import quantize
    from deploy.provenance import with_provenance
    side = check_outputs_of(source, out, calib_dir=calib_dir, inputs=inputs, overwrite=overwrite)  # before calibrating
    q = quantize(source, policy, config, input_size=input_size, calib_dir=calib_dir)
    if qat is not None:
        q = dataclasses.replace(q, report=types.MappingProxyType({**q.report, "qat": dict(qat)}))
    q = dataclasses.replace(q, report=with_provenance(q.report))
    q.save(out, overwrite=overwrite, report=side)  # without overwrite: linked into place, never over a racing run
    return q
