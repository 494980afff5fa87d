"""What `tools/convert.py --policy / --list_layers / --write_policy` do, as library calls."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import models
from deploy import calibration, hybrid
from deploy.jobs import _atomic_write, report_path
from deploy.policy import Policy


def _prepared(name: str, scale: int, input_hw: tuple[int, int], weights: bool | str = True,
              keras_model=None) -> hybrid.Prepared:
    model = keras_model if keras_model is not None else models.build(name, scale, weights=weights)
    fixed = models.with_fixed_shape(model, name, scale, input_hw) if keras_model is None else model
    return hybrid.prepare(fixed)


def list_layers(name: str, scale: int, input_hw: tuple[int, int]) -> str:
    """A table of every policy-addressable layer: ops, output shape, MACs and share."""
    prep = _prepared(name, scale, input_hw, weights=False)
    return (f"{models.spec(name).name} x{scale}, LR input {input_hw[0]}x{input_hw[1]}\n"
            + hybrid.layers_table(hybrid.list_layers(prep)))


def write_policy(name: str, scale: int, precision: str, input_hw: tuple[int, int],
                 io_type: str = "float32") -> str:
    """A complete uniform policy naming every layer: the starting point for a hand edit."""
    prep = _prepared(name, scale, input_hw, weights=False)
    return Policy.uniform(models.spec(name).name, scale, precision, prep.layers, io_type).dumps()


def convert_with_policy(name: str, scale: int, policy_path: str, out: str | Path, *,
                        input_hw: tuple[int, int], weights: bool | str = True,
                        calib_dir: Optional[str] = None, calib_images: int = 8,
                        overwrite: bool = False, qat_steps: int = 0,
                        train_dir: Optional[str] = None) -> dict:
    """Policy -> one verified mixed-precision .tflite + report; nothing written on failure."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    policy = Policy.load(policy_path)
    policy.validate(model=models.spec(name).name, scale=scale)
    model = models.build(name, scale, weights=weights)
    fixed = models.with_fixed_shape(model, name, scale, input_hw)
    prep = hybrid.prepare(fixed)
    policy.validate(prep.layers)  # before minutes of QAT or calibration
    qat_report = None
    if qat_steps > 0:
        from deploy import qat
        result = qat.qat_finetune(model, policy.resolved(prep.layers), steps=qat_steps,
                                  train_dir=train_dir, scale=scale)
        fixed = models.with_fixed_shape(result.model, name, scale, input_hw)
        prep = hybrid.prepare(fixed)
        qat_report = {"steps": result.steps, "seconds": round(result.seconds, 1),
                      "val_psnr_y_before": round(result.val_psnr_y_before, 3),
                      "val_psnr_y_after": round(result.val_psnr_y_after, 3),
                      "simulated_layers": len(result.simulated), "not_simulated": result.skipped}
    calib = calibration.calibration_set(scale, input_hw, calib_dir=calib_dir, n_images=calib_images)
    tflite, report = hybrid.quantize_policy(prep, policy, calib)
    report = {"model": models.spec(name).name, "scale": scale, "precision": "policy",
              "weights": str(weights) if weights is not True else (models.weights_path(name, scale).name
                                                                   if models.weights_path(name, scale) else None),
              "qat": qat_report, **report}
    _atomic_write(out, tflite)
    _atomic_write(report_path(out), json.dumps(report, indent=2) + "\n")
    return report
