"""One search session: the model prepared, calibrated and costed once, then asked many times.

`setup` validates the cheap inputs first (profile names, files), then prepares and calibrates;
`measure_drops` measures (or reuses, after checking) each group's a16w8 -> a8w8 drop.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional, Sequence

from deploy.convert import per_layer as hybrid
from deploy.convert.sources import ModelSource
from deploy.data import calibration
from deploy.errors import UserInputError, choice_error
from deploy.latency import cost_model
from deploy.latency import npu_cost
from deploy.latency.device_profiles import DEFAULT_PROFILE  # the search's default, re-exported
from deploy.policy_search import fast_oracle
from deploy.policy_search import npu_judge
from deploy.policy_search import oracle as quality_oracle
from deploy.policy_search import parallel
from deploy.policy_search import sensitivity
from deploy.policy_search import solver
from deploy.policy_search.space import Group, Problem, make_groups

#: --drops: each group's drop simulated ("exact"), estimated from shared backward passes
#: (deploy/policy_search/drop_estimate.py), or "auto": estimated where the exact drops would
#: simulate more than ESTIMATE_ABOVE_MACS multiply-accumulates (groups x patches x model MACs;
#: EDSR-baseline x3 1.0e13, x4 1.3e13: minutes on 2 cores; every other zoo model <= 2.1e11)
DROPS = ("auto", "exact", "estimated")
ESTIMATE_ABOVE_MACS = 1e12


@dataclasses.dataclass
class Setup:
    src: ModelSource
    prep: hybrid.Prepared
    groups: tuple[Group, ...]
    oracle: quality_oracle.QualityOracle
    cost: Any  # deploy.latency.CostModel
    macs: dict[str, int]
    profile_label: str
    npu: Any = None  # deploy.latency.npu_cost.NpuCostModel with an NPU target (--npu), else None
    #: where measured sensitivity PSNRs are kept as they come (resumable), or None
    sens_cache: Optional[Path] = None
    #: where candidates are measured (--workers / --cluster); None: this process
    parallel: Optional[parallel.Plan] = None
    #: how the search's drops are made: "exact", "estimated" or "auto" (`drops_method`)
    drops: str = "auto"
    #: the model at the deployed input size when quality is judged on smaller patches (a video
    #: frame: latency and NPU placement at 640x360, PSNR on 64x64 patches); None: the same as `prep`
    deployed: Optional[hybrid.Prepared] = None

    @property
    def deployed_hw(self) -> tuple[int, int]:
        return tuple((self.deployed or self.prep).input_shape[1:3])

    def build_deployed(self, a) -> bytes:
        """The policy's quantized model at the deployed input size (for compiling and pricing):
        the patch model itself, or the frame-size twin quantized with the patches' ranges (same
        tensor names; ranges do not change where ops are placed)."""
        if self.deployed is None:
            return self.oracle.build(a)[0]
        return hybrid.quantize_policy(self.deployed, self.oracle.policy(a), self.oracle.calib, qsv=self.oracle.qsv,
                                      smoke=False)[0]

    def problem(self, drop_db: Sequence[float]) -> Problem:
        return solver.problem_from(self.cost, self.groups, drop_db)

    def close(self) -> None:
        """Stop worker processes and leave the Dask scheduler (the session can still measure
        in this process afterwards)."""
        parallel.detach(self.oracle)
        if self.parallel is not None:
            self.parallel.close()


def setup(src: ModelSource, input_hw: tuple[int, int], *, device_profile: Optional[str] = None,
          op_profiles: Optional[Sequence[str]] = None,
          op_profile_models: Optional[Sequence[str]] = None, calib_dir: Optional[str] = None,
          calib_images: int = 8, val_dir: Optional[str] = None, val_images: int = 5,
          fuse: bool = True, npu: Optional[str] = None, npu_cache_dir: Optional[str | Path] = None,
          oracle: str = "fast", budget_on: str = "mean", workers: int = 1,
          cluster: Optional[str] = None, drops: str = "auto", numerics: str = "auto",
          val_patch: Optional[tuple[int, int]] = None) -> Setup:
    """Validate the cheap inputs first (profile names, files), then prepare and calibrate once.

    With `npu` (e.g. "qualcomm:SM8650") the cost model takes which ops the compiler places on the
    NPU from compiling the uniform a8w8/a16w8 models (deploy.latency.npu_cost); compile reports are
    cached under `npu_cache_dir` when given. `workers` (0 = one per core) or `cluster` (a Dask
    scheduler address) measure independent candidates in other processes
    (deploy/policy_search/parallel.py); the scheduler is reached before any model work.
    `numerics` (npu_judge.NUMERICS): what judges the budget, LiteRT's CPU kernels or, by default
    with `npu`, that NPU's emulated arithmetic. `val_patch` (default `default_val_patch`): the LR
    patch size quality is judged on; latency and placement are always at `input_hw`."""
    if oracle not in fast_oracle.ORACLES:
        raise choice_error("oracle", oracle, fast_oracle.ORACLES)
    if drops not in DROPS:
        raise choice_error("drops", drops, DROPS)
    if drops == "estimated" and oracle != "fast":
        raise UserInputError("drops 'estimated' needs the simulation (oracle 'fast'); use drops 'exact'",
                             option="drops", value=drops)
    if budget_on not in quality_oracle.BUDGET_ON:
        raise choice_error("budget_on", budget_on, quality_oracle.BUDGET_ON)
    if op_profiles and device_profile:
        raise UserInputError("pass device_profile or op_profiles, not both", option="op_profiles")
    if op_profiles and npu:
        raise UserInputError("--npu prices with a device profile (default htp_npu) and the compiler's "
                             "placement; it does not combine with --op_profiles")
    numerics = npu_judge.resolve_numerics(numerics, npu)
    prof = None
    if not op_profiles:
        prof = cost_model.load_profile(device_profile or DEFAULT_PROFILE)  # unknown name: fail before minutes of work
    soc = None
    if npu:
        if not prof.npu_cpu_switch:
            raise UserInputError(f"--npu needs an NPU device profile with an npu_cpu_switch cost "
                                 f"('{prof.name}' has none); use --device_profile htp_npu")
        soc = npu_cost.check_npu_tools(npu)  # unknown SoC / extra not installed: one line, now
    plan = parallel.plan(workers, cluster)  # a wrong address fails now, not after preparing
    try:
        return _setup(src, input_hw, plan, prof=prof, soc=soc, op_profiles=op_profiles,
                      op_profile_models=op_profile_models, device_profile=device_profile, calib_dir=calib_dir,
                      calib_images=calib_images, val_dir=val_dir, val_images=val_images, fuse=fuse,
                      npu_cache_dir=npu_cache_dir, oracle=oracle, budget_on=budget_on, drops=drops,
                      numerics=numerics, val_patch=tuple(val_patch) if val_patch else default_val_patch(input_hw))
    except BaseException:
        plan.close()
        raise


def _setup(src: ModelSource, input_hw: tuple[int, int], plan: parallel.Plan, *, prof, soc, op_profiles,
           op_profile_models, device_profile, calib_dir, calib_images, val_dir, val_images, fuse,
           npu_cache_dir, oracle, budget_on, drops, numerics, val_patch) -> Setup:
    prep = hybrid.prepare_source(src, val_patch)
    deployed = None
    if tuple(val_patch) != tuple(input_hw):  # a frame-size model judged on patches: same layers, same weights
        deployed = hybrid.prepare_source(src, input_hw)
        if deployed.layers != prep.layers:
            raise UserInputError(f"the model at {input_hw[0]}x{input_hw[1]} has other layers than at "
                                 f"{val_patch[0]}x{val_patch[1]}; pass --val_patch equal to --input_size")
    cost_prep = deployed or prep
    if op_profiles:
        if len(op_profiles) != 2:
            raise UserInputError("--op_profiles takes two results files: all-a8w8 and all-a16w8 (comma separated)")
        shas = list(op_profile_models or (None, None))
        if len(shas) != 2:
            raise UserInputError("--op_profile_models takes the two .tflite files the profiles measured")
        cost = cost_model.from_op_profiles(cost_prep, op_profiles[0], op_profiles[1], a8w8_tflite_sha256=shas[0],
                                        a16w8_tflite_sha256=shas[1], model=src.name, scale=src.scale)
        label = f"op profiles {Path(op_profiles[0]).name}, {Path(op_profiles[1]).name}"
    else:
        label = device_profile or DEFAULT_PROFILE
        cost = cost_model.from_device_profile(cost_prep, label, model=src.name, scale=src.scale)
    calib = calibration.calibration_set(src.scale, val_patch, calib_dir=calib_dir, n_images=calib_images,
                                        convention=src.convention)
    val = quality_oracle.validation_set(src.scale, val_patch, val_dir=val_dir, n_images=val_images)
    # --oracle: candidates on simulated quantization (LiteRT judges the answer) or all on LiteRT
    # --numerics npu: the judge is the target NPU's emulated arithmetic (its PSNRs kept beside the compile cache)
    on_npu = numerics == "npu"
    oracle = fast_oracle.make(oracle, prep, model=src.name, scale=src.scale, calib=calib, val=val,
                              convention=src.convention, budget_on=budget_on, npu_soc=soc if on_npu else None,
                              npu_cache_dir=npu_cache_dir if on_npu else None)
    parallel.attach(oracle, plan)
    macs = {i.name: i.macs for i in hybrid.list_layers(prep)}
    s = Setup(src, prep, tuple(make_groups(prep.graph, prep.layers, fuse)), oracle, cost, macs, label,
              None, parallel=plan, drops=drops, deployed=deployed)
    if soc is not None:
        uniform = {p: s.build_deployed(oracle.uniform(p)) for p in npu_cost.SEARCHED}
        s.npu = npu_cost.from_npu_placement(cost_prep, prof, soc, uniform, model=src.name, scale=src.scale,
                                            cache_dir=npu_cache_dir)
        s.cost, s.profile_label = s.npu.cost, f"{label} + {soc.target} placement"
    return s


#: quality is judged on LR patches of the deployed input size up to this many pixels; a larger
#: input (a video frame) is judged on VAL_PATCH patches of the same fully convolutional weights
#: (30 frame-size patches would cost ~100x the time for the same ranking)
MAX_PATCH_PIXELS = 128 * 128
VAL_PATCH = (64, 64)


def default_val_patch(input_hw) -> tuple[int, int]:
    h, w = int(input_hw[0]), int(input_hw[1])
    return (h, w) if h * w <= MAX_PATCH_PIXELS else VAL_PATCH


def drops_method(s: Setup) -> str:
    """"exact" or "estimated" for this session (see DROPS); the simulation is needed to estimate."""
    simulated = isinstance(s.oracle, fast_oracle.FastOracle)
    if s.drops == "estimated" and not simulated:  # the simulator could not run this graph
        raise UserInputError("--drops estimated needs the simulation, which cannot run this model "
                             "(the search fell back to LiteRT); use --drops exact")
    if s.drops != "auto" or not simulated:
        return "exact" if not simulated else s.drops
    work = len(s.groups) * len(s.oracle.val.lr) * sum(s.macs.values())
    return "estimated" if work > ESTIMATE_ABOVE_MACS else "exact"


def measure_drops(s: Setup, progress: bool, sens_file: Optional[str | Path] = None) -> sensitivity.Sensitivity:
    """Measure each group's a8w8 drop, or take it from an earlier --sensitivity run of the
    same model, groups and validation set (anything else is refused, not silently reused)."""
    if sens_file is None and drops_method(s) == "estimated":
        return sensitivity.estimated(s.oracle, s.groups, s.macs, progress=progress)
    if sens_file is None:
        return sensitivity.measure(s.oracle, s.groups, s.macs, both_directions=False, progress=progress,
                                   cache=measured_cache(s))
    obj = read_sensitivity_file(sens_file)
    want = {"kind": "sensitivity", "model": s.src.name, "scale": s.src.scale,
            "validation": s.oracle.val.to_json(), "groups": [g.name for g in s.groups]}
    want["weights"] = s.src.weights  # the same layers with other weights have other drops
    want["budget_on"] = s.oracle.budget_on  # worst-image drops are not mean drops
    got = {**{k: obj.get(k) for k in want}, "groups": [l.get("layer") for l in obj.get("layers", [])],
           "budget_on": obj.get("budget_on", "mean"),
           "weights": (obj.get("model_source") or {}).get("weights")}
    diff = [k for k in want if got[k] != want[k]]
    if diff:
        raise UserInputError(f"sensitivity file {sens_file} does not match this run ({', '.join(diff)} differ); "
                         "rerun --sensitivity with the same model, weights, --input_size and validation flags")
    return sensitivity.Sensitivity(s.src.name, s.src.scale, s.groups, tuple(l["macs"] for l in obj["layers"]),
                                   obj["baseline"], tuple(l["drop_db"] for l in obj["layers"]),
                                   tuple(l["gain_db"] for l in obj["layers"]), 0, 0.0, obj["validation"])


def read_sensitivity_file(sens_file: str | Path) -> dict:
    """A `--sensitivity` JSON (the one JSON reader), refused with one line when it is another kind
    of file (a policy, a front) or its per-layer rows are malformed; cheap, so the CLI checks it
    before any model work."""
    from deploy._files import read_json
    obj = read_json(sens_file, "sensitivity file", "write it with tools/search_policy.py --sensitivity")
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind != "sensitivity":
        what = ("a policy" if isinstance(obj, dict) and "layers" in obj and "default" in obj
                else f"kind {kind!r}" if kind else "not a sensitivity report")
        raise UserInputError(f"sensitivity file {sens_file} is {what}, not a --sensitivity result; write one with "
                             "tools/search_policy.py --sensitivity --out sens.json")
    rows = obj.get("layers")
    keys = ("layer", "macs", "drop_db", "gain_db")
    if (not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in keys) for r in rows)
            or "baseline" not in obj):
        raise UserInputError(f"sensitivity file {sens_file} is malformed (each of 'layers' needs "
                             f"{', '.join(keys)}); rerun --sensitivity")
    return obj


def cache_key(s: Setup) -> str:
    """What a measured PSNR depends on: model, its weights (hashed), groups, input size,
    calibration and validation sets."""
    import hashlib
    import numpy as np
    h = hashlib.sha256(json.dumps({
        "v": 1, "model": s.src.name, "scale": s.src.scale, "weights": s.src.weights,
        "groups": [[g.name, list(g.layers)] for g in s.groups],
        "input_hw": list(s.prep.input_shape[1:3]), "convention": s.src.to_json()["io_convention"],
        "calibration": s.oracle.calib.to_json(), "validation": s.oracle.val.to_json(),
        "oracle": s.oracle.kind, "budget_on": s.oracle.budget_on, "reference": s.oracle.reference},
        sort_keys=True, default=str).encode())
    for w in s.src.model.get_weights() if s.src.model is not None else []:
        h.update(np.ascontiguousarray(w).tobytes())
    h.update(hashlib.sha256(s.prep.float_tflite).digest() if s.src.graph_route else b"")
    return h.hexdigest()[:16]


def measured_cache(s: Setup) -> Optional[sensitivity.MeasuredCache]:
    return sensitivity.MeasuredCache(s.sens_cache, cache_key(s)) if s.sens_cache else None


def provenance(s: Setup) -> dict:
    return {"model_source": s.src.to_json(), "input_hw": list(s.deployed_hw),
            "group_names": [g.name for g in s.groups], "cost_model": s.cost.source,
            "oracle": s.oracle.kind, "numerics": fast_oracle.numerics_of(s.oracle), "budget_on": s.oracle.budget_on,
            "calibration_seconds": round(s.oracle.calibration_seconds, 1),
            "parallel": (s.parallel or parallel.Plan("none", 1)).to_json()}


