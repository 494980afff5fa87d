"""What `tools/search_policy.py` does, as library calls: set up once, then sensitivity, search
or Pareto front; every output written whole (JSON + PNG) or not at all."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

from deploy.data import calibration

from deploy.policy_search import oracle as candidates

from deploy.convert import per_layer as hybrid

from deploy.latency import cost_model as latency

from deploy.policy_search import pareto

from deploy.policy_search import solver as search

from deploy.policy_search import sensitivity
from deploy.commands.jobs import atomic_write
from deploy.policy_search.space import NARROW, WIDE, Group, Problem, make_groups
from deploy.convert.sources import ModelSource

DEFAULT_PROFILE = "htp_npu"


class BudgetImpossible(RuntimeError):
    """Even the reference-width model misses the target; the best policy found was written."""


def parse_budget(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"--budget_db must be a number of dB (e.g. 0.1), not '{text}'") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"--budget_db must be a non-negative number of dB, not '{text}'")
    return value


@dataclasses.dataclass
class Setup:
    src: ModelSource
    prep: hybrid.Prepared
    groups: tuple[Group, ...]
    oracle: candidates.QualityOracle
    cost: Any  # deploy.latency.CostModel
    macs: dict[str, int]
    profile_label: str

    def problem(self, drop_db: Sequence[float]) -> Problem:
        return search.problem_from(self.cost, self.groups, drop_db)


def setup(src: ModelSource, input_hw: tuple[int, int], *, device_profile: Optional[str] = None,
          op_profiles: Optional[Sequence[str]] = None,
          op_profile_models: Optional[Sequence[str]] = None, calib_dir: Optional[str] = None,
          calib_images: int = 8, val_dir: Optional[str] = None, val_images: int = 5,
          fuse: bool = True) -> Setup:
    """Validate the cheap inputs first (profile names, files), then prepare and calibrate once."""
    if op_profiles and device_profile:
        raise ValueError("pass --device_profile or --op_profiles, not both")
    if not op_profiles:
        latency.load_profile(device_profile or DEFAULT_PROFILE)  # unknown name: fail before minutes of work
    prep = hybrid.prepare(src.fixed(input_hw))
    if op_profiles:
        if len(op_profiles) != 2:
            raise ValueError("--op_profiles takes two results files: all-a8w8 and all-a16w8 (comma separated)")
        shas = list(op_profile_models or (None, None))
        if len(shas) != 2:
            raise ValueError("--op_profile_models takes the two .tflite files the profiles measured")
        cost = latency.from_op_profiles(prep, op_profiles[0], op_profiles[1], a8w8_tflite_sha256=shas[0],
                                        a16w8_tflite_sha256=shas[1], model=src.name, scale=src.scale)
        label = f"op profiles {Path(op_profiles[0]).name}, {Path(op_profiles[1]).name}"
    else:
        label = device_profile or DEFAULT_PROFILE
        cost = latency.from_device_profile(prep, label, model=src.name, scale=src.scale)
    calib = calibration.calibration_set(src.scale, input_hw, calib_dir=calib_dir, n_images=calib_images,
                                        convention=src.convention)
    val = candidates.validation_set(src.scale, input_hw, val_dir=val_dir, n_images=val_images)
    oracle = candidates.QualityOracle(prep, model=src.name, scale=src.scale, calib=calib, val=val,
                                      convention=src.convention)
    macs = {i.name: i.macs for i in hybrid.list_layers(prep)}
    return Setup(src, prep, tuple(make_groups(prep.model, prep.layers, fuse)), oracle, cost, macs, label)


def _check_out(out: Path, overwrite: bool, *extra: Path) -> None:
    for p in (out, *extra):
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists; pass --overwrite to replace it")


def _png(path: Path, draw) -> None:
    """Draw into a temp name beside `path`, then move it into place (never half a PNG)."""
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        draw(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def run_sensitivity(s: Setup, out: str | Path, *, overwrite: bool = False, progress: bool = True) -> dict:
    out = Path(out)
    _check_out(out, overwrite, out.with_suffix(".png"))
    sens = sensitivity.measure(s.oracle, s.groups, s.macs, progress=progress)
    report = {**sens.to_json(), **_provenance(s)}
    atomic_write(out, json.dumps(report, indent=2) + "\n")
    _png(out.with_suffix(".png"), lambda p: sensitivity.plot(sens, p))
    return {"report": report, "table": sens.table(), "png": str(out.with_suffix(".png"))}


def measure_drops(s: Setup, progress: bool, sens_file: Optional[str | Path] = None) -> sensitivity.Sensitivity:
    """Measure each group's a8w8 drop, or take it from an earlier --sensitivity run of the
    same model, groups and validation set (anything else is refused, not silently reused)."""
    if sens_file is None:
        return sensitivity.measure(s.oracle, s.groups, s.macs, both_directions=False, progress=progress)
    try:
        obj = json.loads(Path(sens_file).read_text())
    except FileNotFoundError:
        raise ValueError(f"sensitivity file {sens_file} does not exist; write it with --sensitivity") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"sensitivity file {sens_file} is not valid JSON ({e.msg}); rerun --sensitivity") from None
    want = {"kind": "sensitivity", "model": s.src.name, "scale": s.src.scale,
            "validation": s.oracle.val.to_json(), "groups": [g.name for g in s.groups]}
    got = {**{k: obj.get(k) for k in want}, "groups": [l.get("layer") for l in obj.get("layers", [])]}
    diff = [k for k in want if got[k] != want[k]]
    if diff:
        raise ValueError(f"sensitivity file {sens_file} does not match this run ({', '.join(diff)} differ); "
                         "rerun --sensitivity with the same model, --input_size and validation flags")
    return sensitivity.Sensitivity(s.src.name, s.src.scale, s.groups, tuple(l["macs"] for l in obj["layers"]),
                                   obj["baseline"], tuple(l["drop_db"] for l in obj["layers"]),
                                   tuple(l["gain_db"] for l in obj["layers"]), 0, 0.0, obj["validation"])


def search_report_path(out: Path) -> Path:
    return out.with_name(out.stem + ".search.json")


def run_search(s: Setup, out: str | Path, *, budget_db: float, reference: str = "a16w8",
               max_evals: int = 60, overwrite: bool = False, progress: bool = True,
               sens_file: Optional[str | Path] = None) -> dict:
    """Writes the policy at `out` (tools/convert.py --policy takes it unchanged) and the search
    record beside it; raises BudgetImpossible after writing the best found when none meets it."""
    out = Path(out)
    _check_out(out, overwrite, search_report_path(out))
    sens = measure_drops(s, progress, sens_file)
    prob = s.problem(sens.drop_db)
    result = search.search(s.oracle, prob, budget_db=budget_db, reference=reference,
                           max_evals=max_evals, progress=progress)
    policy = s.oracle.policy(result.assignment)
    uniform = {p: prob.latency_ms((int(p == WIDE),) * prob.n) for p in (NARROW, WIDE)}
    report = {**result.to_json(), "budget_db": budget_db, "device_profile": s.profile_label,
              "policy": policy.to_json(), "predicted_ms_uniform": {k: round(v, 4) for k, v in uniform.items()},
              "ratio_to_int8": round(result.best.ms / uniform[NARROW], 4),
              "ratio_to_a16w8": round(result.best.ms / uniform[WIDE], 4),
              "sensitivity_evaluations": sens.evaluations, "validation": s.oracle.val.to_json(),
              "calibration": s.oracle.calib.to_json(), **_provenance(s)}
    atomic_write(out, policy.dumps())
    atomic_write(search_report_path(out), json.dumps(report, indent=2) + "\n")
    if not result.feasible:
        raise BudgetImpossible(
            f"budget impossible: even all-a16w8 reaches {result.best.psnr:.3f} dB < target "
            f"{result.target_psnr:.3f} dB ({reference} {result.reference_psnr:.3f} − {budget_db} dB); "
            f"wrote the best found (all a16w8) to {out}")
    return report


def run_pareto(s: Setup, out: str | Path, *, n_budgets: int = 12, overwrite: bool = False,
               progress: bool = True, sens_file: Optional[str | Path] = None) -> dict:
    out = Path(out)
    _check_out(out, overwrite, out.with_suffix(".png"))
    sens = measure_drops(s, progress, sens_file)
    prob = s.problem(sens.drop_db)
    cands = pareto.sweep(s.oracle, prob, n_budgets=n_budgets, progress=progress)
    float_ms = s.cost.predict_ms({l: "float" for l in s.prep.layers})
    front = {**pareto.front_json(s.oracle, prob, cands, float_ms=float_ms, device_profile=s.profile_label),
             **_provenance(s)}
    atomic_write(out, json.dumps(front, indent=2) + "\n")
    _png(out.with_suffix(".png"), lambda p: pareto.plot(front, p))
    return front


def _provenance(s: Setup) -> dict:
    return {"model_source": s.src.to_json(), "input_hw": list(s.prep.model.input_shape[1:3]),
            "group_names": [g.name for g in s.groups], "cost_model": s.cost.source,
            "calibration_seconds": round(s.oracle.calibration_seconds, 1)}


def search_table(r: dict) -> str:
    rows = [f"{'':<26}{'PSNR_Y val':>11}{'pred. ms':>10}",
            f"{'reference ' + r['reference']:<26}{r['reference_psnr_y']:>11.3f}{'':>10}",
            f"{'target':<26}{r['target_psnr_y']:>11.3f}{'':>10}",
            f"{'uniform a8w8':<26}{'':>11}{r['predicted_ms_uniform'][NARROW]:>10.3f}",
            f"{'uniform a16w8':<26}{'':>11}{r['predicted_ms_uniform'][WIDE]:>10.3f}",
            f"{'searched hybrid':<26}{r['psnr_y']:>11.3f}{r['predicted_ms']:>10.3f}",
            f"a16w8 groups {r['a16w8_fraction']:.0%} of {r['groups']}; x{r['ratio_to_int8']:.2f} int8 latency, "
            f"x{r['ratio_to_a16w8']:.2f} a16w8; {r['evaluations'] + r['sensitivity_evaluations']} candidate "
            f"models measured in {r['seconds']:.0f} s + sensitivity ({r['device_profile']})"]
    return "\n".join(rows)
