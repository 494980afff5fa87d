"""What `tools/convert.py --policy / --list_layers / --write_policy` do, as library calls."""
from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path
from typing import Optional

from deploy.convert import per_layer as hybrid

from deploy.convert.api import quantize, report_path
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource
from deploy.provenance import with_provenance
from deploy._files import check_outputs
from deploy.commands.jobs import source_files


def list_layers(src: ModelSource, input_hw: tuple[int, int]) -> str:
    """A table of every policy-addressable layer: ops, output shape, MACs and share."""
    prep = hybrid.prepare_source(src, input_hw)
    return (f"{src.name} x{src.scale}, LR input {input_hw[0]}x{input_hw[1]}\n"
            + hybrid.layers_table(hybrid.list_layers(prep)))


def write_policy(src: ModelSource, precision: str, input_hw: tuple[int, int],
                 io_type: str = "float32") -> str:
    """A complete uniform policy naming every layer: the starting point for a hand edit."""
    prep = hybrid.prepare_source(src, input_hw)
    return Policy.for_layers(src.name, src.scale, precision, prep.layers, io_type).dumps()


def convert_with_policy(src: ModelSource, policy_path: str, out: str | Path, *,
                        input_hw: tuple[int, int], calib_dir: Optional[str] = None,
                        calib_images: int = 8, overwrite: bool = False, qat_steps: int = 0,
                        train_dir: Optional[str] = None, ptq=None) -> dict:
    """Policy file -> one verified mixed-precision .tflite + report; nothing written on failure."""
    out = Path(out)
    side = report_path(out, avoid=(policy_path,))  # never over the policy file
    check_outputs((out, side), (policy_path, *source_files(src), calib_dir, train_dir), overwrite=overwrite)
    policy = Policy.load(policy_path)
    qat_report = None
    if qat_steps > 0:
        from deploy.experimental import qat
        ptq, qat_report = qat.finetune_source(src, policy, input_hw, steps=qat_steps, train_dir=train_dir,
                                              calib_dir=calib_dir, calib_images=calib_images, ptq=ptq)
    q = quantize(src, policy, input_size=input_hw, calib_dir=calib_dir, calib_images=calib_images, ptq=ptq)
    if qat_report is not None:
        q = dataclasses.replace(q, report=types.MappingProxyType({**q.report, "qat": qat_report}))
    q = dataclasses.replace(q, report=with_provenance(q.report))
    q.save(out, overwrite=overwrite, report=side)  # atomic: a racing run's file is never replaced
    return {**q.report, "report_path": str(side)}
