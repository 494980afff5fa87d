"""What `tools/convert.py --policy / --list_layers / --write_policy` do, as library calls."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from deploy.convert import per_layer as hybrid

from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource
from deploy.evaluation import workflows
from deploy.evaluation.config import QuantizeConfig


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
                        qat_init: str = "minmax", train_dir: Optional[str] = None, ptq=None) -> dict:
    """`convert.py --policy`: policy file (+ the QAT step before it) -> `convert_file`
    (deploy/evaluation/workflows.py); nothing written on failure. Returns the report."""
    inputs = (policy_path, train_dir)  # never over the policy file or the training photos
    side = workflows.check_outputs_of(src, out, calib_dir=calib_dir, inputs=inputs, overwrite=overwrite)  # before QAT
    policy = Policy.load(policy_path)
    qat_report = None
    if qat_steps > 0:
        from deploy.experimental import qat
        ptq, qat_report = qat.finetune_source(src, policy, input_hw, steps=qat_steps, init=qat_init,
                                              train_dir=train_dir, calib_dir=calib_dir, calib_images=calib_images,
                                              ptq=ptq)
    q = workflows.convert_file(src, policy, out, QuantizeConfig(calib_images=calib_images, ptq=ptq), input_size=input_hw,
                               calib_dir=calib_dir, overwrite=overwrite, inputs=inputs, qat=qat_report)
    return {**q.report, "report_path": str(side)}
