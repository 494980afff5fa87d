"""What `tools/convert.py --policy / --list_layers / --write_policy` do, as library calls."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from deploy.data import calibration

from deploy.convert import per_layer as hybrid

from deploy.convert import metadata
from deploy.commands.jobs import atomic_write, report_path
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource
from models.complexity import receptive_radius


def list_layers(src: ModelSource, input_hw: tuple[int, int]) -> str:
    """A table of every policy-addressable layer: ops, output shape, MACs and share."""
    prep = hybrid.prepare(src.fixed(input_hw))
    return (f"{src.name} x{src.scale}, LR input {input_hw[0]}x{input_hw[1]}\n"
            + hybrid.layers_table(hybrid.list_layers(prep)))


def write_policy(src: ModelSource, precision: str, input_hw: tuple[int, int],
                 io_type: str = "float32") -> str:
    """A complete uniform policy naming every layer: the starting point for a hand edit."""
    prep = hybrid.prepare(src.fixed(input_hw))
    return Policy.uniform(src.name, src.scale, precision, prep.layers, io_type).dumps()


def convert_with_policy(src: ModelSource, policy_path: str, out: str | Path, *,
                        input_hw: tuple[int, int], calib_dir: Optional[str] = None,
                        calib_images: int = 8, overwrite: bool = False, qat_steps: int = 0,
                        train_dir: Optional[str] = None) -> dict:
    """Policy -> one verified mixed-precision .tflite + report; nothing written on failure."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if report_path(out).resolve() == Path(policy_path).resolve():
        raise FileExistsError(f"--out {out} would write its report to {report_path(out)}, which is the "
                              "--policy file; choose another --out name")
    policy = Policy.load(policy_path)
    policy.validate(model=src.name, scale=src.scale)
    prep = hybrid.prepare(src.fixed(input_hw))
    policy.validate(prep.layers)  # before minutes of QAT or calibration
    qat_report = None
    if qat_steps > 0:
        from deploy.experimental import qat
        result = qat.qat_finetune(src.model, policy.resolved(prep.layers), steps=qat_steps,
                                  train_dir=train_dir, scale=src.scale, convention=src.convention)
        src = ModelSource(src.name, src.scale, result.model, src.convention, src.zoo, src.weights)
        prep = hybrid.prepare(src.fixed(input_hw))
        qat_report = {"steps": result.steps, "seconds": round(result.seconds, 1),
                      "val_psnr_y_before": round(result.val_psnr_y_before, 3),
                      "val_psnr_y_after": round(result.val_psnr_y_after, 3),
                      "simulated_layers": len(result.simulated), "not_simulated": result.unsimulated}
    calib = calibration.calibration_set(src.scale, input_hw, calib_dir=calib_dir, n_images=calib_images,
                                        convention=src.convention)
    tflite, report = hybrid.quantize_policy(prep, policy, calib)
    report = {**src.to_json(), "precision": "policy", "qat": qat_report, **report,
              "receptive_radius_lr": round(receptive_radius(prep.model), 2)}
    tflite, report = metadata.stamp(tflite, report)  # scale, I/O convention, quantization, policy sha
    atomic_write(out, tflite)
    atomic_write(report_path(out), json.dumps(report, indent=2) + "\n")
    return report
